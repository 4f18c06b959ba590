// Runs the CI integrations the way their CI would, for the dist suite:
//   node tests/dist/ci-run.mjs github INPUTS.json   action.yml's composite steps: each step's env
//        with ${{ inputs.NAME }} from INPUTS.json (else the input's default), run by its shell
//        with GITHUB_ACTION_PATH = the repository root
//   node tests/dist/ci-run.mjs gitlab VARS.json     ci/gitlab/airlock.yml's .airlock job: its
//        variables (VARS.json overrides them, as a job that extends it does) and its script
//        lines, run one after the other by sh -e as GitLab's runner does
//   node tests/dist/ci-run.mjs gitlab-yaml          only parses the template (exit 1 if invalid)
// The process environment (CI, GITHUB_*, ACTIONS_ID_TOKEN_REQUEST_*, CI_* ...) is passed on;
// the exit status is the first failing step's.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from '../api/node_modules/yaml/dist/index.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const [kind, file] = process.argv.slice(2);
const given = file ? JSON.parse(fs.readFileSync(file, 'utf8')) : {};

function run(shell, script, env) {
  const r = spawnSync(shell, ['-e', '-c', script], { env, stdio: 'inherit' });
  return r.status ?? 1;
}

if (kind === 'github') {
  const action = YAML.parse(fs.readFileSync(path.join(ROOT, 'action.yml'), 'utf8'));
  if (action.runs?.using !== 'composite') throw new Error('action.yml: not a composite action');
  for (const name of Object.keys(given)) {
    if (!(name in action.inputs)) throw new Error(`action.yml has no input '${name}'`);
  }
  const inputs = {};
  for (const [name, spec] of Object.entries(action.inputs)) {
    if (spec.required && !(name in given)) throw new Error(`input '${name}' is required`);
    inputs[name] = name in given ? String(given[name]) : String(spec.default ?? '');
  }
  const expand = (v) => String(v).replace(/\$\{\{\s*inputs\.([\w-]+)\s*\}\}/g, (_, n) => {
    if (!(n in inputs)) throw new Error(`action.yml refers to an unknown input '${n}'`);
    return inputs[n];
  });
  for (const step of action.runs.steps) {
    const env = { ...process.env, GITHUB_ACTION_PATH: ROOT };
    for (const [k, v] of Object.entries(step.env ?? {})) env[k] = expand(v);
    const status = run(step.shell === 'bash' ? 'bash' : 'sh', expand(step.run), env);
    if (status !== 0) process.exit(status);
  }
} else if (kind === 'gitlab' || kind === 'gitlab-yaml') {
  const tmpl = YAML.parse(fs.readFileSync(path.join(ROOT, 'ci/gitlab/airlock.yml'), 'utf8'));
  const job = tmpl['.airlock'];
  if (!job || !Array.isArray(job.script)) throw new Error("ci/gitlab/airlock.yml: no '.airlock' job with a script");
  if (!job.id_tokens?.AIRLOCK_ID_TOKEN?.aud) throw new Error('ci/gitlab/airlock.yml: no id_tokens AIRLOCK_ID_TOKEN with aud');
  if (kind === 'gitlab-yaml') process.exit(0);
  const env = { ...process.env };
  for (const [k, v] of Object.entries({ ...job.variables, ...given })) {
    env[k] = typeof v === 'object' && v !== null ? String(v.value ?? '') : String(v);
  }
  for (const line of job.script) {
    const status = run('sh', line, env);
    if (status !== 0) process.exit(status);
  }
} else {
  console.error('usage: ci-run.mjs github INPUTS.json | gitlab VARS.json | gitlab-yaml');
  process.exit(2);
}
