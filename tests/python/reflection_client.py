"""Asks a steadfast server's reflection service with grpcio-reflection's
ProtoReflectionDescriptorDatabase (which speaks grpc.reflection.v1alpha) and
prints what it learns, one fact a line, for tests/tests/reflection.rs.

Usage: reflection_client.py HOST:PORT
"""

import sys

import grpc
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)


def shape(method):
    """`stream T` for a streaming side, `T` otherwise, as in a .proto file."""
    request = method.input_type.full_name
    response = method.output_type.full_name
    if method.client_streaming:
        request = "stream " + request
    if method.server_streaming:
        response = "stream " + response
    return f"{method.name} {request} -> {response}"


def main():
    address = sys.argv[1]
    with grpc.insecure_channel(address) as channel:
        grpc.channel_ready_future(channel).result(timeout=30)
        database = ProtoReflectionDescriptorDatabase(channel)
        for service in database.get_services():
            print("service", service)

        pool = DescriptorPool(database)
        lab = pool.FindServiceByName("lab.v1.Lab")
        for method in lab.methods:
            print(shape(method))
        frame = pool.FindMessageTypeByName("lab.v1.LabSleepFrame")
        print(
            "LabSleepFrame",
            " ".join(
                f"{field.name} {field.message_type.full_name}"
                for field in frame.fields
            ),
        )

        # A miss is a KeyError (the server answered NOT_FOUND in the stream)...
        try:
            pool.FindMessageTypeByName("lab.v1.NoSuchThing")
            print("missing NoSuchThing: found")
        except KeyError:
            print("missing NoSuchThing: KeyError")
        # ... and the server goes on answering.
        print("after the miss", pool.FindMessageTypeByName("lab.v1.Identity").full_name)

        # A proto that imports well-known types.
        types = pool.FindServiceByName("types.v1.Types")
        print(shape(types.methods_by_name["Nothing"]))
        wrapped = types.methods_by_name["Wrapped"].output_type
        message = wrapped.fields_by_name["message"].message_type
        print(wrapped.name, "message", message.full_name)

if __name__ == "__main__":
    main()
