/**
 * A TypeScript client of ecr-facade: protobuf-es messages and Connect-ES
 * speaking the gRPC protocol over HTTP/2. Creates a repository, lists
 * repositories page by page, checks a few thousand layer digests over the
 * server stream, gets a registry token and decodes the google.rpc.BadRequest
 * of a refused request. Exits non-zero on the first unexpected answer.
 *
 *   npm ci && npm run generate && npm run build && npm start -- 127.0.0.1:50051
 */
import { createHash, randomBytes } from "node:crypto";

import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";

import { EcrService } from "./gen/ecr/v1/service_pb.js";
import { BadRequestSchema } from "./gen/google/rpc/error_details_pb.js";

const DIGEST_COUNT = 2000;
const CALL = { timeoutMs: 60_000 };

type Ecr = Client<typeof EcrService>;

/** Pages through DescribeRepositories two at a time; every name in `want` must be listed. */
async function listAllRepositories(client: Ecr, want: string[]): Promise<void> {
  const names: string[] = [];
  let pages = 0;
  let nextToken: string | undefined;
  do {
    const page = await client.describeRepositories({ maxResults: 2, nextToken }, CALL);
    pages++;
    names.push(...page.repositories.map((r) => r.repositoryName ?? ""));
    nextToken = page.nextToken;
  } while (nextToken !== undefined);
  const missing = want.filter((name) => !names.includes(name));
  if (missing.length > 0) throw new Error(`${missing} not listed in ${names.length} repositories`);
  console.log(`listed ${names.length} repositories in ${pages} pages`);
}

/** One call for DIGEST_COUNT digests; one message per upstream batch of at most 100. */
async function checkLayers(client: Ecr, repositoryName: string): Promise<void> {
  const layerDigests = Array.from(
    { length: DIGEST_COUNT },
    (_, i) => "sha256:" + createHash("sha256").update(`layer ${i}`).digest("hex"),
  );
  let messages = 0;
  let answers = 0;
  for await (const batch of client.batchCheckLayerAvailability({ repositoryName, layerDigests }, CALL)) {
    messages++;
    answers += batch.layers.length + batch.failures.length;
  }
  if (answers !== DIGEST_COUNT) throw new Error(`${answers} answers for ${DIGEST_COUNT} digests`);
  console.log(`checked ${DIGEST_COUNT} digests: ${answers} answers in ${messages} messages`);
}

/** An invalid name is refused with a google.rpc.BadRequest naming the field. */
async function showBadRequest(client: Ecr): Promise<void> {
  try {
    await client.createRepository({ repositoryName: "Bad_Name!" }, CALL);
  } catch (e) {
    const error = ConnectError.from(e);
    if (error.code !== Code.InvalidArgument) throw error;
    const violations = error.findDetails(BadRequestSchema).flatMap((b) => b.fieldViolations);
    if (violations.length === 0) throw new Error(`no google.rpc.BadRequest in ${error.message}`);
    for (const v of violations) console.log(`refused: ${v.field}: ${v.description}`);
    return;
  }
  throw new Error("bad name: the call succeeded");
}

async function main(): Promise<void> {
  const addr = process.argv[2] ?? "127.0.0.1:50051";
  const client = createClient(EcrService, createGrpcTransport({ baseUrl: `http://${addr}` }));
  // Three repositories, so that listing two per page takes more than one page.
  const prefix = `example-ts-${randomBytes(4).toString("hex")}`;
  const names = ["a", "b", "c"].map((suffix) => `${prefix}/${suffix}`);
  for (const repositoryName of names) {
    const created = await client.createRepository(
      { repositoryName, tags: [{ key: "team", value: "examples" }] },
      CALL,
    );
    console.log(`created ${created.repository?.repositoryUri}`);
  }
  try {
    await listAllRepositories(client, names);
    await checkLayers(client, names[0]);
    const token = await client.getAuthorizationToken({}, CALL);
    const auth = token.authorizationData[0];
    // The token is a password: print where and until when it works, never the token.
    const expires = auth.expiresAt ? timestampDate(auth.expiresAt).toISOString() : "never";
    console.log(`token for ${auth.proxyEndpoint}, expires ${expires}`);
    await showBadRequest(client);
  } finally {
    for (const repositoryName of names) {
      await client.deleteRepository({ repositoryName, force: true }, CALL);
    }
    console.log(`deleted ${prefix}/*`);
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
