/**
 * RFC 9457 problem details: the one error shape of the API. Everything a
 * client can get wrong becomes one of these; only our own bugs are a 500.
 */
export type ProblemFieldError = { path: string; message: string };

export type ProblemBody = {
  type: string;
  title: string;
  status: number;
  detail: string;
  errors?: ProblemFieldError[];
  [extension: string]: unknown;
};

export class Problem extends Error {
  override readonly name = 'Problem';
  constructor(
    readonly status: number,
    readonly slug: string,
    readonly title: string,
    readonly detail: string,
    readonly extensions: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(detail);
  }

  toBody(): ProblemBody {
    return { type: `urn:lorestore:problem:${this.slug}`, title: this.title, status: this.status, detail: this.detail, ...this.extensions };
  }
}

export const validationProblem = (errors: ProblemFieldError[]): Problem =>
  new Problem(
    400,
    'validation',
    'Invalid request',
    errors.map((e) => `${e.path || '(body)'}: ${e.message}`).join('; '),
    { errors },
  );
