/**
 * Push, tag and pull an image through ecr-facade alone, from Node: protobuf-es
 * messages and Connect-ES speaking the gRPC protocol over HTTP/2. The same
 * round trip as examples/python/push_pull.py.
 *
 * Builds a real image (a ustar layer and its config), pushes both with the
 * PushLayer bidirectional stream, puts a Docker v2 manifest tagged v1,
 * promotes it to "release" by putting the manifest exactly as BatchGetImage
 * returned it, lists the tags, then pulls the layer back with PullLayer and
 * checks the bytes and their sha256. Exits non-zero on any failure.
 *
 *   npm ci && npm run generate && npm run build && node dist/push_pull.js 127.0.0.1:50051
 */
import { createHash, randomBytes } from "node:crypto";

import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";

import { EcrService, type PushLayerRequestSchema } from "./gen/ecr/v1/service_pb.js";

// Small against the 16 MiB message limit on purpose: the layer goes out in
// many chunk messages, as a large layer from disk would.
const CHUNK = 256 * 1024;
const CALL = { timeoutMs: 60_000 };

type Ecr = Client<typeof EcrService>;
type PushLayerInit = MessageInitShape<typeof PushLayerRequestSchema>;

function digest(data: Uint8Array): string {
  return "sha256:" + createHash("sha256").update(data).digest("hex");
}

/** One 512-byte ustar header for a regular file; the fields are NUL-padded ASCII, numbers octal. */
function ustarHeader(name: string, size: number): Buffer {
  const header = Buffer.alloc(512);
  const field = (offset: number, length: number, value: string) =>
    header.write(value, offset, length, "ascii");
  const octal = (offset: number, length: number, value: number) =>
    field(offset, length, value.toString(8).padStart(length - 1, "0"));
  field(0, 100, name);
  octal(100, 8, 0o644); // mode
  octal(108, 8, 0); // uid
  octal(116, 8, 0); // gid
  octal(124, 12, size);
  octal(136, 12, 0); // mtime: fixed, so the same content gives the same digest
  field(156, 1, "0"); // regular file
  field(257, 8, "ustar\u000000");
  // The checksum is summed with its own field as spaces, then written as 6 octal digits, NUL, space.
  field(148, 8, " ".repeat(8));
  const sum = header.reduce((total, byte) => total + byte, 0);
  field(148, 8, sum.toString(8).padStart(6, "0") + "\u0000 ");
  return header;
}

/** A tar archive of `files`: header, data padded to 512 bytes, and two zero blocks at the end. */
function tarLayer(files: [string, Buffer][]): Buffer {
  const parts: Buffer[] = [];
  for (const [name, body] of files) {
    parts.push(ustarHeader(name, body.length), body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

/** Streams `data` with PushLayer; returns the digest the facade computed. */
async function push(client: Ecr, repositoryName: string, data: Buffer): Promise<string> {
  async function* messages(): AsyncGenerator<PushLayerInit> {
    yield {
      message: {
        case: "header",
        value: { repositoryName, expectedDigest: digest(data), totalSize: BigInt(data.length) },
      },
    };
    for (let start = 0; start < data.length; start += CHUNK) {
      yield { message: { case: "chunk", value: data.subarray(start, start + CHUNK) } };
    }
    // Returning ends the iterable, which half-closes the request stream: "done, commit".
  }

  let result: { layerDigest: string; size: bigint } | undefined;
  for await (const answer of client.pushLayer(messages(), CALL)) {
    if (answer.message.case === "progress") {
      const { committedSize, uploadId } = answer.message.value;
      console.log(`  ${committedSize} bytes committed (upload ${uploadId})`);
    } else if (answer.message.case === "result") {
      result = answer.message.value;
    }
  }
  if (result === undefined) throw new Error("PushLayer ended without a result");
  if (result.layerDigest !== digest(data)) {
    throw new Error(`pushed ${digest(data)}, the facade committed ${result.layerDigest}`);
  }
  return result.layerDigest;
}

/** Pulls a layer with PullLayer, checking total_size on the first message and each offset. */
async function pull(client: Ecr, repositoryName: string, layerDigest: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let received = 0;
  let totalSize: bigint | undefined;
  for await (const message of client.pullLayer({ repositoryName, layerDigest }, CALL)) {
    if (chunks.length === 0) totalSize = message.totalSize;
    if (message.offset !== BigInt(received)) {
      throw new Error(`a chunk at offset ${message.offset}, expected ${received}`);
    }
    chunks.push(Buffer.from(message.chunk));
    received += message.chunk.length;
  }
  if (totalSize !== BigInt(received)) throw new Error(`total_size ${totalSize}, received ${received} bytes`);
  console.log(`  pulled ${received} bytes in ${chunks.length} messages`);
  return Buffer.concat(chunks);
}

async function main(addr: string): Promise<void> {
  const client = createClient(EcrService, createGrpcTransport({ baseUrl: `http://${addr}` }));
  const repositoryName = `examples/promote-ts-${randomBytes(4).toString("hex")}`;
  await client.createRepository({ repositoryName }, CALL);

  // A text file and 2 MiB of random bytes: the pull then spans several 1 MiB messages.
  const layer = tarLayer([
    ["hello.txt", Buffer.from("hello from ecr-facade\n".repeat(1000))],
    ["random.bin", randomBytes(2 * 1024 * 1024)],
  ]);
  const config = Buffer.from(
    JSON.stringify({
      architecture: "amd64",
      os: "linux",
      rootfs: { type: "layers", diff_ids: [digest(layer)] },
    }),
  );
  const layerDigest = await push(client, repositoryName, layer);
  await push(client, repositoryName, config);
  console.log(`ok   pushed layer ${layerDigest} and config ${digest(config)}`);

  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.docker.distribution.manifest.v2+json",
    config: {
      mediaType: "application/vnd.docker.container.image.v1+json",
      size: config.length,
      digest: digest(config),
    },
    layers: [
      { mediaType: "application/vnd.docker.image.rootfs.diff.tar", size: layer.length, digest: layerDigest },
    ],
  });
  const put = await client.putImage({ repositoryName, imageManifest: manifest, imageTag: "v1" }, CALL);
  const imageDigest = put.image?.imageId?.imageDigest;
  // PutImage sends the manifest byte for byte, so the image digest is the manifest's sha256.
  if (imageDigest !== digest(Buffer.from(manifest))) {
    throw new Error(`image digest ${imageDigest}, manifest hashes to ${digest(Buffer.from(manifest))}`);
  }
  console.log(`ok   put image ${imageDigest} as v1`);

  // Promotion: the manifest exactly as BatchGetImage returns it, a new tag.
  const got = await client.batchGetImage({ repositoryName, imageIds: [{ imageTag: "v1" }] }, CALL);
  if (got.images.length !== 1) throw new Error(`BatchGetImage returned ${got.images.length} images`);
  await client.putImage(
    { repositoryName, imageManifest: got.images[0].imageManifest ?? "", imageTag: "release" },
    CALL,
  );
  const listed = await client.listImages({ repositoryName }, CALL);
  const tags = listed.imageIds.flatMap((id) => (id.imageTag ? [id.imageTag] : [])).sort();
  const digests = new Set(listed.imageIds.map((id) => id.imageDigest));
  if (tags.join(",") !== "release,v1" || digests.size !== 1 || !digests.has(imageDigest)) {
    throw new Error(`listed tags ${tags} on digests ${[...digests]}`);
  }
  console.log(`ok   tags ${tags.join(", ")} on one image`);

  const pulled = await pull(client, repositoryName, layerDigest);
  if (!pulled.equals(layer)) throw new Error("pulled bytes differ from the pushed layer");
  if (digest(pulled) !== layerDigest) throw new Error(`pulled bytes hash to ${digest(pulled)}`);
  console.log(`ok   pulled ${pulled.length} bytes back, identical, ${digest(pulled)}`);
}

if (process.argv.length !== 3) {
  console.error("usage: node dist/push_pull.js HOST:PORT");
  process.exit(2);
}
main(process.argv[2]).catch((e: unknown) => {
  // A refused call prints as its status, like the Python example; anything else as thrown.
  if (e instanceof ConnectError) console.error(`FAILED: ${Code[e.code]}: ${e.rawMessage}`);
  else console.error("FAILED:", e);
  process.exit(1);
});
