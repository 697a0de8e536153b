#!/usr/bin/env node
/* `npx lorestore …` and the package's bin: runs the admin CLI built into dist/. */
/* global require, __dirname, process */
/* eslint-disable @typescript-eslint/no-require-imports -- a CommonJS shim, run by node as is */
'use strict';

const fs = require('node:fs');
const path = require('node:path');

const main = path.join(__dirname, '..', 'dist', 'apps', 'admin-cli', 'src', 'main.js');
if (!fs.existsSync(main)) {
  process.stderr.write('lorestore: run `npm run build` first (the CLI runs from dist/)\n');
  process.exit(1);
}
// As `node main.js` runs it: quiet when the output is piped into `head` and closed, the exit code set.
require(main).runAsProcess(process.argv);
