#!/usr/bin/env python3
"""ECR's JSON is the facade's JSON: botocore's request bodies decode as ecr.v1.

    .venv/bin/python tests/python/botocore_json_check.py <host:port> <grpcurl> <repository>

The README promises that the protobuf JSON of an ecr.v1 request is the JSON that
ECR's own clients send, enum value names aside. This check holds the facade to
it for every method of ecr.v1.EcrService that the server lists by reflection
(so new RPCs are covered without editing this file) and that has a botocore
operation of the same name, except client-streaming ones (a stream of requests
is not one JSON body):

  1. builds the operation's input from botocore's ECR service model twice, with
     the required members only and with every member, values shaped by the
     model's constraints and validated by botocore's ParamValidator;
  2. serialises it with botocore's own JSON serializer: the exact body boto3
     would POST to ECR;
  3. renames ECR enum values to their ecr.v1 names (MUTABLE ->
     IMAGE_TAG_MUTABILITY_MUTABLE) through the served descriptors, and fails if
     an ECR enum value has no ecr.v1 counterpart;
  4. sends the body with `grpcurl -d`: any answer of the server (OK or an error
     status) passes; a body grpcurl cannot decode as the request message (an
     unknown field, a wrong type) fails.

Prints one line per method and variant; exits 0 when all pass, 1 otherwise.
"""

import datetime
import json
import os
import subprocess
import sys
import tempfile
import uuid

import botocore.session
import botocore.serialize
import botocore.validate
from google.protobuf import descriptor_pb2

SERVICE = "ecr.v1.EcrService"
GRPCURL_TIMEOUT_S = "30"
DIGEST = "sha256:" + "ab" * 32
MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 2, "digest": DIGEST},
        "layers": [],
    }
)
# Plausible values for ECR members by name; anything else gets a generic value
# that satisfies the member's length and range constraints.
KNOWN_VALUES = {
    "registryId": "123456789012",
    "registryIds": "123456789012",
    "imageDigest": DIGEST,
    "layerDigest": DIGEST,
    "layerDigests": DIGEST,
    "imageTag": "latest",
    "uploadId": str(uuid.uuid4()),
    "acceptedMediaTypes": "application/vnd.docker.distribution.manifest.v2+json",
    "imageManifestMediaType": "application/vnd.docker.distribution.manifest.v2+json",
    "imageManifest": MANIFEST,
    "policyText": '{"Version":"2012-10-17","Statement":[]}',
    "Key": "team",
    "Value": "checks",
    "filter": "release-*",
    "kmsKey": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    "nextToken": "token",
    "layerPartBlob": b"layer bytes",
    "partFirstByte": 0,
    "partLastByte": 10,
}


def served_methods(grpcurl, addr, protoset):
    """(methods, messages, enums) of SERVICE as the server describes them by reflection."""
    subprocess.run(
        [grpcurl, "-plaintext", "-protoset-out", protoset, addr, "describe", SERVICE],
        check=True,
        capture_output=True,
    )
    files = descriptor_pb2.FileDescriptorSet()
    with open(protoset, "rb") as f:
        files.ParseFromString(f.read())
    messages, enums, methods = {}, {}, []

    def collect(prefix, message_types, enum_types):
        for enum in enum_types:
            enums[f"{prefix}.{enum.name}"] = enum
        for message in message_types:
            name = f"{prefix}.{message.name}"
            messages[name] = message
            collect(name, message.nested_type, message.enum_type)

    for file in files.file:
        collect("." + file.package if file.package else "", file.message_type, file.enum_type)
        for service in file.service:
            if f"{file.package}.{service.name}" == SERVICE:
                methods.extend(service.method)
    return methods, messages, enums


def sample(shape, name, every_member, depth=0):
    """A value for `shape` that botocore's validator accepts."""
    if depth > 8:
        raise RuntimeError(f"input shape nests too deep at {name}")
    kind = shape.type_name
    if kind == "structure":
        members = shape.members if every_member else {m: shape.members[m] for m in shape.required_members}
        return {m: sample(s, m, every_member, depth + 1) for m, s in members.items()}
    if kind == "list":
        count = max(1, shape.metadata.get("min", 1))
        return [sample(shape.member, name, every_member, depth + 1) for _ in range(count)]
    if kind == "map":
        return {"key": sample(shape.value, name, every_member, depth + 1)}
    if name in KNOWN_VALUES:
        return KNOWN_VALUES[name]
    if kind == "string":
        if shape.enum:
            return shape.enum[0]
        return "x" * max(1, shape.metadata.get("min", 1))
    if kind in ("integer", "long"):
        return max(1, shape.metadata.get("min", 1))
    if kind == "boolean":
        return True
    if kind == "blob":
        return b"bytes"
    if kind == "timestamp":
        return datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    if kind in ("float", "double"):
        return 1.5
    raise RuntimeError(f"no sample for {name} of type {kind}")


def json_name(field):
    if field.json_name:
        return field.json_name
    head, *rest = field.name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def to_proto_enums(value, message, messages, enums, path, problems):
    """Renames ECR enum values in `value` (JSON of `message`) to ecr.v1 enum value names."""
    if not isinstance(value, dict):
        return value
    fields = {}
    for field in message.field:
        fields[json_name(field)] = field
        fields[field.name] = field
    out = {}
    for key, item in value.items():
        field = fields.get(key)
        if field is None:
            out[key] = item  # left for grpcurl to refuse: that is the failure to report
            continue
        items = item if isinstance(item, list) else [item]
        if field.type == descriptor_pb2.FieldDescriptorProto.TYPE_ENUM:
            enum = enums[field.type_name]
            renamed = [proto_enum_value(enum, v, f"{path}.{key}", problems) for v in items]
        elif field.type == descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE and field.type_name in messages:
            nested = messages[field.type_name]
            renamed = [to_proto_enums(v, nested, messages, enums, f"{path}.{key}", problems) for v in items]
        else:
            renamed = items
        out[key] = renamed if isinstance(item, list) else renamed[0]
    return out


def proto_enum_value(enum, ecr_value, path, problems):
    """ECR's "MUTABLE" is IMAGE_TAG_MUTABILITY_MUTABLE: the prefix of the *_UNSPECIFIED value."""
    unspecified = next((v.name for v in enum.value if v.number == 0), "")
    prefix = unspecified[: -len("UNSPECIFIED")] if unspecified.endswith("UNSPECIFIED") else ""
    wanted = prefix + str(ecr_value).upper().replace("-", "_")
    if any(v.name == wanted for v in enum.value):
        return wanted
    problems.append(f"{path}: ECR value {ecr_value!r} has no {enum.name} value {wanted}")
    return ecr_value


def check_enum_coverage(shape, message, messages, enums, path, problems, depth=0):
    """Every value ECR allows for an enum member must exist in the ecr.v1 enum."""
    if depth > 8 or shape.type_name != "structure":
        return
    fields = {json_name(f): f for f in message.field}
    for name, member in shape.members.items():
        field = fields.get(name)
        if field is None:
            continue  # an unknown member fails the grpcurl call with "every member"
        element = member.member if member.type_name == "list" else member
        if field.type == descriptor_pb2.FieldDescriptorProto.TYPE_ENUM and getattr(element, "enum", None):
            for ecr_value in element.enum:
                proto_enum_value(enums[field.type_name], ecr_value, f"{path}.{name}", problems)
        elif field.type == descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE and field.type_name in messages:
            check_enum_coverage(element, messages[field.type_name], messages, enums, f"{path}.{name}", problems, depth + 1)


def send(grpcurl, addr, method, body):
    """(accepted, grpcurl's output): accepted when the server answered at all."""
    result = subprocess.run(
        [grpcurl, "-plaintext", "-max-time", GRPCURL_TIMEOUT_S, "-d", "@", addr, f"{SERVICE}/{method}"],
        input=body,
        capture_output=True,
        text=True,
    )
    output = (result.stdout + result.stderr).strip()
    # grpcurl prints "ERROR:\n  Code: ..." for a status the server returned; a
    # body it cannot decode never reaches the server ("error getting request data").
    answered = result.returncode == 0 or "ERROR:\n  Code:" in output
    return answered and "error getting request data" not in output, output


def main():
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    addr, grpcurl, repository = sys.argv[1:]
    model = botocore.session.get_session().get_service_model("ecr")
    serializer = botocore.serialize.create_serializer("json", include_validation=True)
    with tempfile.TemporaryDirectory() as tmp:
        methods, messages, enums = served_methods(grpcurl, addr, os.path.join(tmp, "service.protoset"))

    passed, failed, skipped = 0, 0, []
    for method in methods:
        if method.client_streaming:
            skipped.append(f"{method.name} (client streaming)")
            continue
        if method.name not in model.operation_names:
            skipped.append(f"{method.name} (no botocore operation)")
            continue
        operation = model.operation_model(method.name)
        request_message = messages[method.input_type]
        problems = []
        check_enum_coverage(operation.input_shape, request_message, messages, enums, method.name, problems)
        for variant, every_member in (("required members", False), ("every member", True)):
            params = sample(operation.input_shape, "", every_member)
            if "repositoryName" in operation.input_shape.members:
                params["repositoryName"] = repository
            botocore.validate.validate_parameters(params, operation.input_shape)
            body = serializer.serialize_to_request(params, operation)["body"]
            renamed = to_proto_enums(json.loads(body), request_message, messages, enums, method.name, problems)
            accepted, output = send(grpcurl, addr, method.name, json.dumps(renamed))
            if accepted and not problems:
                passed += 1
                status = output.splitlines()[1].strip() if output.startswith("ERROR:") else "OK"
                print(f"ok   {method.name} ({variant}): decoded, answered {status}", flush=True)
            else:
                failed += 1
                print(f"FAIL {method.name} ({variant}): body {body.decode()}", flush=True)
                for line in problems + ([] if accepted else [output]):
                    print(f"     {line}", flush=True)
            problems = []
    for name in skipped:
        print(f"skip {name}", flush=True)
    print(f"botocore json: {passed} passed, {failed} failed", flush=True)
    # A check that found nothing to check proves nothing.
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
