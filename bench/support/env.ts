/** Bench knobs come from the environment; a bad value stops the run before anything starts. */
export const envNumber = (name: string, fallback: number, min: number, max: number): number => {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min || value > max) {
    throw new Error(`${name} must be a number in ${min}..${max}, got "${raw}"`);
  }
  return value;
};

export const envIntList = (name: string, fallback: number[], min: number, max: number): number[] => {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const values = raw.split(',').map((part) => Number(part.trim()));
  if (values.length === 0 || values.some((v) => !Number.isInteger(v) || v < min || v > max)) {
    throw new Error(`${name} must be a comma-separated list of integers in ${min}..${max}, got "${raw}"`);
  }
  return values;
};

/** Progress goes to stderr so stdout stays the report (JSON, then the table). */
export const log = (line: string): void => {
  process.stderr.write(`[bench] ${line}\n`);
};
