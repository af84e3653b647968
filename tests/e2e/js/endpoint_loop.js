// A job that outlasts its sessions: calls STS GetCallerIdentity in a loop
// with the AWS SDK for JavaScript v3 and its default credential chain (which
// finds AWS_CONTAINER_CREDENTIALS_FULL_URI and the token), for SECONDS
// seconds, one call every INTERVAL_MS. Prints one JSON line: the calls, the
// failures with their messages, and the access key IDs the SDK used in turn.
//
//   node endpoint_loop.js SECONDS INTERVAL_MS
"use strict";

const { STSClient, GetCallerIdentityCommand } = require("@aws-sdk/client-sts");

async function main() {
  const seconds = Number(process.argv[2] || 10);
  const interval = Number(process.argv[3] || 500);
  const client = new STSClient({});
  const out = { calls: 0, failures: [], keys: [], arns: [] };
  const end = Date.now() + seconds * 1000;
  while (Date.now() < end) {
    out.calls += 1;
    try {
      const id = await client.send(new GetCallerIdentityCommand({}));
      const creds = await client.config.credentials();
      if (out.keys[out.keys.length - 1] !== creds.accessKeyId) out.keys.push(creds.accessKeyId);
      if (!out.arns.includes(id.Arn)) out.arns.push(id.Arn);
    } catch (e) {
      out.failures.push(`${e.name}: ${e.message}`);
    }
    await new Promise((r) => setTimeout(r, interval));
  }
  process.stdout.write(JSON.stringify(out) + "\n");
}

main().catch((e) => {
  process.stderr.write(`endpoint_loop.js: ${e.stack || e}\n`);
  process.exit(1);
});
