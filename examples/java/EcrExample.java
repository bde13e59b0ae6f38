/*
 * A Java (grpc-java) client of ecr-facade: creates a repository, lists
 * repositories page by page, checks a few thousand layer digests over the server
 * stream, gets a registry token and decodes the google.rpc.BadRequest of a
 * refused request. Exits non-zero on the first unexpected answer.
 *
 *   scripts/gen-clients java
 *   examples/run java        # compiles with javac against Debian's grpc-java jars
 */

import com.ecr.v1.BatchCheckLayerAvailabilityRequest;
import com.ecr.v1.BatchCheckLayerAvailabilityResponse;
import com.ecr.v1.CreateRepositoryRequest;
import com.ecr.v1.DeleteRepositoryRequest;
import com.ecr.v1.DescribeRepositoriesRequest;
import com.ecr.v1.DescribeRepositoriesResponse;
import com.ecr.v1.EcrServiceGrpc;
import com.ecr.v1.GetAuthorizationTokenRequest;
import com.ecr.v1.Repository;
import com.ecr.v1.Tag;
import com.google.protobuf.Any;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.rpc.BadRequest;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.TimeUnit;

public final class EcrExample {
  private static final int DIGEST_COUNT = 2000;
  private static final long TIMEOUT_S = 60;

  private final EcrServiceGrpc.EcrServiceBlockingStub stub;

  private EcrExample(ManagedChannel channel) {
    this.stub = EcrServiceGrpc.newBlockingStub(channel);
  }

  /** A fresh deadline per call: a stub's deadline is absolute, not per call. */
  private EcrServiceGrpc.EcrServiceBlockingStub call() {
    return stub.withDeadlineAfter(TIMEOUT_S, TimeUnit.SECONDS);
  }

  public static void main(String[] args) throws Exception {
    String target = args.length > 0 ? args[0] : "127.0.0.1:50051";
    ManagedChannel channel = ManagedChannelBuilder.forTarget(target).usePlaintext().build();
    try {
      new EcrExample(channel).run();
    } finally {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  private void run() throws NoSuchAlgorithmException {
    byte[] suffix = new byte[4];
    new SecureRandom().nextBytes(suffix);
    // Three repositories, so that listing two per page takes more than one page.
    String prefix = "example-java-" + HexFormat.of().formatHex(suffix);
    List<String> names = List.of(prefix + "/a", prefix + "/b", prefix + "/c");
    for (String name : names) {
      Repository created =
          call()
              .createRepository(
                  CreateRepositoryRequest.newBuilder()
                      .setRepositoryName(name)
                      .addTags(Tag.newBuilder().setKey("team").setValue("examples"))
                      .build())
              .getRepository();
      System.out.println("created " + created.getRepositoryUri());
    }
    try {
      listAllRepositories(names);
      checkLayers(names.get(0));
      var auth = call().getAuthorizationToken(GetAuthorizationTokenRequest.getDefaultInstance())
          .getAuthorizationData(0);
      // The token is a password: print where and until when it works, never the token.
      Instant expires = Instant.ofEpochSecond(auth.getExpiresAt().getSeconds());
      System.out.println("token for " + auth.getProxyEndpoint() + ", expires " + expires);
      showBadRequest();
    } finally {
      for (String name : names) {
        call().deleteRepository(
            DeleteRepositoryRequest.newBuilder().setRepositoryName(name).setForce(true).build());
      }
      System.out.println("deleted " + prefix + "/*");
    }
  }

  /** Pages through DescribeRepositories two at a time; every name in {@code want} must be listed. */
  private void listAllRepositories(List<String> want) {
    List<String> names = new ArrayList<>();
    int pages = 0;
    DescribeRepositoriesRequest.Builder request = DescribeRepositoriesRequest.newBuilder().setMaxResults(2);
    while (true) {
      DescribeRepositoriesResponse page = call().describeRepositories(request.build());
      pages++;
      page.getRepositoriesList().forEach(r -> names.add(r.getRepositoryName()));
      if (!page.hasNextToken()) {
        break;
      }
      request.setNextToken(page.getNextToken());
    }
    if (!names.containsAll(want)) {
      throw new IllegalStateException(want + " not all listed in " + names.size() + " repositories");
    }
    System.out.println("listed " + names.size() + " repositories in " + pages + " pages");
  }

  /** One call for DIGEST_COUNT digests; one message per upstream batch of at most 100. */
  private void checkLayers(String repository) throws NoSuchAlgorithmException {
    MessageDigest sha256 = MessageDigest.getInstance("SHA-256");
    BatchCheckLayerAvailabilityRequest.Builder request =
        BatchCheckLayerAvailabilityRequest.newBuilder().setRepositoryName(repository);
    for (int i = 0; i < DIGEST_COUNT; i++) {
      byte[] sum = sha256.digest(("layer " + i).getBytes(StandardCharsets.UTF_8));
      request.addLayerDigests("sha256:" + HexFormat.of().formatHex(sum));
    }
    int messages = 0;
    int answers = 0;
    Iterator<BatchCheckLayerAvailabilityResponse> stream =
        call().batchCheckLayerAvailability(request.build());
    while (stream.hasNext()) {
      BatchCheckLayerAvailabilityResponse batch = stream.next();
      messages++;
      answers += batch.getLayersCount() + batch.getFailuresCount();
    }
    if (answers != DIGEST_COUNT) {
      throw new IllegalStateException(answers + " answers for " + DIGEST_COUNT + " digests");
    }
    System.out.println(
        "checked " + DIGEST_COUNT + " digests: " + answers + " answers in " + messages + " messages");
  }

  /** An invalid name is refused with a google.rpc.BadRequest naming the field. */
  private void showBadRequest() {
    try {
      call().createRepository(CreateRepositoryRequest.newBuilder().setRepositoryName("Bad_Name!").build());
    } catch (StatusRuntimeException e) {
      if (e.getStatus().getCode() != Status.Code.INVALID_ARGUMENT) {
        throw e;
      }
      com.google.rpc.Status status = StatusProto.fromThrowable(e);
      int violations = 0;
      for (Any detail : status == null ? List.<Any>of() : status.getDetailsList()) {
        if (!detail.is(BadRequest.class)) {
          continue;
        }
        try {
          for (BadRequest.FieldViolation v : detail.unpack(BadRequest.class).getFieldViolationsList()) {
            violations++;
            System.out.println("refused: " + v.getField() + ": " + v.getDescription());
          }
        } catch (InvalidProtocolBufferException bad) {
          throw new IllegalStateException("undecodable BadRequest", bad);
        }
      }
      if (violations == 0) {
        throw new IllegalStateException("no google.rpc.BadRequest in " + e);
      }
      return;
    }
    throw new IllegalStateException("bad name: the call succeeded");
  }
}
