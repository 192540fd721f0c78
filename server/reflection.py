"""Server reflection under both names, so every grpcurl and IDE finds the schema.

grpcio-reflection ships only `grpc.reflection.v1alpha`; newer clients ask for
`grpc.reflection.v1` first. The two protocols are identical on the wire (v1 is v1alpha renamed),
so the v1 service is the same servicer registered under the v1 name, and its descriptor (v1alpha's,
renamed) is added to the pool so `describe grpc.reflection.v1.ServerReflection` works too.
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection, reflection_pb2

V1ALPHA = "grpc.reflection.v1alpha.ServerReflection"
V1 = "grpc.reflection.v1.ServerReflection"
_V1_FILE = "grpc/reflection/v1/reflection.proto"


def _add_v1_descriptor() -> None:
    pool = descriptor_pool.Default()
    try:
        pool.FindFileByName(_V1_FILE)
        return
    except KeyError:
        pass
    file = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(file)
    file.name = _V1_FILE
    file.package = "grpc.reflection.v1"
    old, new = ".grpc.reflection.v1alpha.", ".grpc.reflection.v1."
    for message in file.message_type:
        for field in message.field:
            # Only message/enum fields have a type name; assigning "" would mark it present.
            if field.HasField("type_name"):
                field.type_name = field.type_name.replace(old, new)
    for service in file.service:
        for method in service.method:
            method.input_type = method.input_type.replace(old, new)
            method.output_type = method.output_type.replace(old, new)
    pool.Add(file)


def enable(server: grpc.aio.Server, service_names: Iterable[str]) -> None:
    """Registers reflection v1 and v1alpha on an aio server, listing service_names and both."""
    _add_v1_descriptor()
    names = [*service_names, V1, V1ALPHA]
    servicer = reflection.aio.ReflectionServicer(names)
    method = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    for name in (V1, V1ALPHA):
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(name, {"ServerReflectionInfo": method}),)
        )
