// Command example is a Go client of ecr-facade: it creates a repository, lists
// repositories page by page, checks a few thousand layer digests over the
// server stream, gets a registry token and decodes the google.rpc.BadRequest of
// a refused request. It exits non-zero on the first unexpected answer.
//
// Build it against the generated package (README, section "Clients"):
//
//	scripts/gen-clients go
//	GO111MODULE=off GOPATH=$PWD/build/clients/go:/usr/share/gocode go run ./examples/go 127.0.0.1:50051
package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	ecrv1 "ecr-facade/gen/go/ecr/v1"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

const digestCount = 2000

func main() {
	addr := "127.0.0.1:50051"
	if len(os.Args) > 1 {
		addr = os.Args[1]
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// Plaintext for a local facade. (grpc-go >= 1.34 spells this
	// grpc.WithTransportCredentials(insecure.NewCredentials()); Debian ships 1.33.)
	conn, err := grpc.DialContext(ctx, addr, grpc.WithInsecure(), grpc.WithBlock())
	if err != nil {
		log.Fatalf("connect to %s: %v", addr, err)
	}
	defer conn.Close()
	client := ecrv1.NewEcrServiceClient(conn)

	// Three repositories, so that listing two per page takes more than one page.
	prefix := "example-go-" + randomHex(4)
	names := []string{prefix + "/a", prefix + "/b", prefix + "/c"}
	for _, name := range names {
		created, err := client.CreateRepository(ctx, &ecrv1.CreateRepositoryRequest{
			RepositoryName: name,
			Tags:           []*ecrv1.Tag{{Key: "team", Value: "examples"}},
		})
		if err != nil {
			log.Fatalf("create repository: %v", err)
		}
		fmt.Printf("created %s\n", created.GetRepository().GetRepositoryUri())
	}
	defer func() {
		for _, name := range names {
			if _, err := client.DeleteRepository(ctx, &ecrv1.DeleteRepositoryRequest{RepositoryName: name, Force: proto.Bool(true)}); err != nil {
				log.Fatalf("delete repository: %v", err)
			}
		}
		fmt.Printf("deleted %s/*\n", prefix)
	}()

	listAllRepositories(ctx, client, names)
	checkLayers(ctx, client, names[0])

	token, err := client.GetAuthorizationToken(ctx, &ecrv1.GetAuthorizationTokenRequest{})
	if err != nil {
		log.Fatalf("get authorization token: %v", err)
	}
	auth := token.GetAuthorizationData()[0]
	// The token itself is a password: print where and until when it works, never the token.
	fmt.Printf("token for %s, expires %s\n", auth.GetProxyEndpoint(), auth.GetExpiresAt().AsTime().Format(time.RFC3339))

	showBadRequest(ctx, client)
}

// listAllRepositories pages through DescribeRepositories two at a time and
// fails unless every repository in want is among them.
func listAllRepositories(ctx context.Context, client ecrv1.EcrServiceClient, want []string) {
	var pages, total int
	listed := map[string]bool{}
	request := &ecrv1.DescribeRepositoriesRequest{MaxResults: proto.Int32(2)}
	for {
		page, err := client.DescribeRepositories(ctx, request)
		if err != nil {
			log.Fatalf("describe repositories: %v", err)
		}
		pages++
		for _, repository := range page.GetRepositories() {
			total++
			listed[repository.GetRepositoryName()] = true
		}
		if page.NextToken == nil {
			break
		}
		request.NextToken = page.NextToken
	}
	for _, name := range want {
		if !listed[name] {
			log.Fatalf("%s not listed in %d repositories", name, total)
		}
	}
	fmt.Printf("listed %d repositories in %d pages\n", total, pages)
}

// checkLayers asks about digestCount digests in one call; the facade answers
// one message per upstream batch of at most 100, in completion order.
func checkLayers(ctx context.Context, client ecrv1.EcrServiceClient, repository string) {
	digests := make([]string, digestCount)
	for i := range digests {
		sum := sha256.Sum256([]byte(fmt.Sprintf("layer %d", i)))
		digests[i] = "sha256:" + hex.EncodeToString(sum[:])
	}
	stream, err := client.BatchCheckLayerAvailability(ctx, &ecrv1.BatchCheckLayerAvailabilityRequest{
		RepositoryName: repository,
		LayerDigests:   digests,
	})
	if err != nil {
		log.Fatalf("batch check layer availability: %v", err)
	}
	var messages, answers int
	for {
		batch, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			log.Fatalf("batch check layer availability stream: %v", err)
		}
		messages++
		answers += len(batch.GetLayers()) + len(batch.GetFailures())
	}
	if answers != digestCount {
		log.Fatalf("%d answers for %d digests", answers, digestCount)
	}
	fmt.Printf("checked %d digests: %d answers in %d messages\n", digestCount, answers, messages)
}

// showBadRequest sends an invalid name and prints the field violations the
// facade attaches as a google.rpc.BadRequest detail.
func showBadRequest(ctx context.Context, client ecrv1.EcrServiceClient) {
	_, err := client.CreateRepository(ctx, &ecrv1.CreateRepositoryRequest{RepositoryName: "Bad_Name!"})
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument {
		log.Fatalf("bad name: want InvalidArgument, got %v", err)
	}
	violations := 0
	for _, detail := range st.Details() {
		if badRequest, ok := detail.(*errdetails.BadRequest); ok {
			for _, violation := range badRequest.GetFieldViolations() {
				violations++
				fmt.Printf("refused: %s: %s\n", violation.GetField(), violation.GetDescription())
			}
		}
	}
	if violations == 0 {
		log.Fatalf("bad name: no google.rpc.BadRequest in %v", st.Details())
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		log.Fatal(err)
	}
	return hex.EncodeToString(b)
}
