// The AWS SDK for JavaScript v3 as a real consumer of stsmfa's credentials,
// for tests/e2e/test_more_clients.py:
//
//   node sts_client.mjs ini PROFILE ROLE_ARN   # fromIni: the profile's credential_process
//   node sts_client.mjs env ROLE_ARN           # fromEnv: `stsmfa env` / `stsmfa exec`
//
// Calls GetCallerIdentity, then AssumeRole (which the bed allows only with
// MFA), and prints one JSON object: {"accessKeyId", "arn", "assumedRoleArn"}
// (never a secret). The endpoint is AWS_ENDPOINT_URL. A failure prints the
// SDK's error name and message on stderr and exits 1.
import { STSClient, GetCallerIdentityCommand, AssumeRoleCommand } from "@aws-sdk/client-sts";
import { fromEnv, fromIni } from "@aws-sdk/credential-providers";

const [mode, ...rest] = process.argv.slice(2);
let credentials;
let roleArn;
if (mode === "ini" && rest.length === 2) {
  credentials = fromIni({ profile: rest[0] });
  roleArn = rest[1];
} else if (mode === "env" && rest.length === 1) {
  credentials = fromEnv();
  roleArn = rest[0];
} else {
  console.error("usage: node sts_client.mjs ini PROFILE ROLE_ARN | env ROLE_ARN");
  process.exit(2);
}

const client = new STSClient({
  region: process.env.AWS_REGION || "us-east-1",
  endpoint: process.env.AWS_ENDPOINT_URL,
  credentials,
  maxAttempts: 1,
});

try {
  const creds = await client.config.credentials();
  const who = await client.send(new GetCallerIdentityCommand({}));
  const role = await client.send(
    new AssumeRoleCommand({ RoleArn: roleArn, RoleSessionName: "js-sdk-client" }),
  );
  console.log(
    JSON.stringify({
      accessKeyId: creds.accessKeyId,
      arn: who.Arn,
      assumedRoleArn: role.AssumedRoleUser?.Arn,
    }),
  );
} catch (e) {
  console.error(`sts_client.mjs: ${e.name}: ${e.message}`);
  process.exit(1);
}
