import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', '.lorestore/**', '*.js', '*.mjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { parserOptions: { projectService: false } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'error',
      'no-console': 'error',
    },
  },
  {
    // The domain is pure: no framework, no I/O, no clock.
    files: ['libs/domain/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['@nestjs/*', 'pg', 'ioredis', 'fastify', 'node:*', '@lorestore/*'], message: 'libs/domain imports nothing but itself.' },
          ],
        },
      ],
      'no-restricted-syntax': [
        'error',
        { selector: "NewExpression[callee.name='Date'][arguments.length=0]", message: 'decide/evolve get time from the command metadata.' },
        { selector: "CallExpression[callee.object.name='Date'][callee.property.name='now']", message: 'decide/evolve get time from the command metadata.' },
        { selector: "CallExpression[callee.name='randomUUID']", message: 'ids arrive on the command.' },
        { selector: "MemberExpression[object.name='process']", message: 'the domain reads no environment.' },
      ],
    },
  },
  {
    // Only apps read the environment; libs receive typed config.
    files: ['libs/**/*.ts'],
    ignores: ['libs/**/*.spec.ts', 'libs/**/testing/**'],
    rules: {
      'no-restricted-properties': ['error', { object: 'process', property: 'env', message: 'config is validated in apps/* and injected.' }],
    },
  },
  {
    files: ['bench/**/*.ts', 'test/**/*.ts', 'apps/admin-cli/**/*.ts', '**/*.spec.ts'],
    rules: { 'no-console': 'off' },
  },
);
