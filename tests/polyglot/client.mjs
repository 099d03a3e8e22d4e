// A Sensei client in another language: Node.js with @grpc/grpc-js, the API loaded from
// protos/ at run time by @grpc/proto-loader (no generated code). It exchanges an API key
// for an access token, creates a migration, reads it back, and reads the rich error
// (google.rpc.Status with ErrorInfo and BadRequest) of a request with bad input.
// Prints one JSON document on stdout; exits non-zero on an unexpected failure.
//
// Environment:
//   SENSEI_ORG_ADDR, SENSEI_MIGRATION_ADDR  host:port of the services
//   SENSEI_API_KEY                          an API key of an organization member
//   SENSEI_PROTO_DIR                        the protos/ directory (default: ../../protos)
//   SENSEI_PROTO_INCLUDE                    more include dirs (path-separated) for
//                                           google/protobuf/*.proto and google/rpc/*.proto
import path from "node:path";
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import protobuf from "protobufjs";

const DEADLINE_MS = 10_000;
const here = path.dirname(fileURLToPath(import.meta.url));
const protoDir = process.env.SENSEI_PROTO_DIR ?? path.resolve(here, "../../protos");
const includeDirs = [
  protoDir,
  ...(process.env.SENSEI_PROTO_INCLUDE ?? "").split(path.delimiter).filter(Boolean),
];

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`set ${name}`);
  return value;
}

const definition = protoLoader.loadSync(
  ["sensei/org/v1/auth.proto", "sensei/migration/v1/migration.proto"],
  { includeDirs, keepCase: false, longs: String, enums: String, defaults: true, oneofs: true },
);
const api = grpc.loadPackageDefinition(definition);

// google.rpc.Status and its details, to read the `grpc-status-details-bin` trailer.
const errorTypes = new protobuf.Root();
errorTypes.resolvePath = (_origin, target) =>
  includeDirs.map((dir) => path.join(dir, target)).find((file) => existsSync(file)) ?? target;
errorTypes.loadSync(["google/rpc/status.proto", "google/rpc/error_details.proto"]);
const Status = errorTypes.lookupType("google.rpc.Status");

/** Calls a unary method with a deadline; resolves with the response. */
function unary(client, method, request, metadata = new grpc.Metadata()) {
  return new Promise((resolve, reject) => {
    client[method](request, metadata, { deadline: Date.now() + DEADLINE_MS }, (error, response) =>
      error ? reject(error) : resolve(response),
    );
  });
}

/** The code, reason and field violations of a failed call's rich status. */
function richError(error) {
  const [details] = error.metadata?.get("grpc-status-details-bin") ?? [];
  const result = { code: error.code, codeName: grpc.status[error.code], message: error.details };
  if (!details) return result;
  const status = Status.decode(details);
  for (const any of status.details) {
    const type = errorTypes.lookupType(any.type_url.split("/").pop());
    const detail = type.toObject(type.decode(any.value));
    if (type.name === "ErrorInfo") Object.assign(result, { reason: detail.reason, domain: detail.domain });
    if (type.name === "BadRequest") {
      result.fieldViolations = (detail.fieldViolations ?? detail.field_violations ?? []).map((v) => v.field);
    }
  }
  return result;
}

/** The `org` claim of a JWT (read only; the services verify the signature). */
function orgOf(token) {
  return JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString("utf8")).org;
}

async function main() {
  const insecure = grpc.credentials.createInsecure();
  const auth = new api.sensei.org.v1.AuthService(required("SENSEI_ORG_ADDR"), insecure);
  const migrations = new api.sensei.migration.v1.MigrationService(
    required("SENSEI_MIGRATION_ADDR"),
    insecure,
  );
  try {
    const exchanged = await unary(auth, "ExchangeApiKey", { apiKey: required("SENSEI_API_KEY") });
    const metadata = new grpc.Metadata();
    metadata.set("authorization", `Bearer ${exchanged.accessToken}`);
    const parent = `organizations/${orgOf(exchanged.accessToken)}`;

    const created = await unary(
      migrations,
      "CreateMigration",
      {
        parent,
        requestId: randomUUID(),
        migration: {
          displayName: "from node",
          description: "created by tests/polyglot/client.mjs",
          sourceConfig: {
            fields: {
              host: { stringValue: "source.db.internal" },
              port: { numberValue: 5432 },
              database: { stringValue: "shop" },
              password: { stringValue: "not-for-your-eyes" },
            },
          },
        },
      },
      metadata,
    );
    const fetched = await unary(migrations, "GetMigration", { name: created.migration.name }, metadata);

    let invalid = null;
    try {
      await unary(migrations, "CreateMigration", { parent, migration: { displayName: "" } }, metadata);
    } catch (error) {
      invalid = richError(error);
    }

    const summary = (m) => ({
      name: m.name,
      id: m.id,
      orgId: m.orgId,
      displayName: m.displayName,
      status: m.status,
      progress: m.progress,
      sourceConfig: Object.fromEntries(
        Object.entries(m.sourceConfig?.fields ?? {}).map(([key, value]) => [key, value[value.kind]]),
      ),
      createTime: m.createTime,
    });
    process.stdout.write(
      `${JSON.stringify({
        tokenType: exchanged.tokenType,
        parent,
        created: summary(created.migration),
        fetched: summary(fetched.migration),
        invalid,
      })}\n`,
    );
  } finally {
    auth.close();
    migrations.close();
  }
}

main().catch((error) => {
  process.stderr.write(`${error.stack ?? error}\n`);
  process.exit(1);
});
