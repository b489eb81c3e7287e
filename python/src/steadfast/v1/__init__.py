"""The steadfast.v1 wire contract (proto/steadfast/v1), generated with grpcio-tools.

``frame_pb2`` (heartbeats, blob headers, chunks), ``dispatch_pb2`` and
``dispatch_pb2_grpc`` (``steadfast.v1.Dispatch``), ``options_pb2`` (the options).
Code a user generates from the emitted wire protos imports ``from steadfast.v1
import frame_pb2``, and code generated from protos as written (a client that has
not moved to the wire protos) ``options_pb2``: both find these, since the
installed package hides any ``steadfast/v1`` modules generated beside them.
Do not edit: ``python/tests/test_vendored.py`` checks they are what grpcio-tools
generates from ``proto/`` today. Generated with an older grpcio-tools on purpose:
its code runs on every grpcio and protobuf runtime at least as new (protobuf 6.31.1
on, 7.x included; grpcio 1.75.1 on), which Python 3.9 can install (grpcio 1.85 and
protobuf 7, and the code their grpcio-tools writes, cannot). Regenerate with that
version::

    pip install grpcio-tools==1.75.1
    python -m grpc_tools.protoc -I proto --python_out=python/src --pyi_out=python/src \
        --grpc_python_out=python/src steadfast/v1/frame.proto steadfast/v1/dispatch.proto \
        steadfast/v1/options.proto
    rm python/src/steadfast/v1/frame_pb2_grpc.py python/src/steadfast/v1/options_pb2_grpc.py
"""

#: The generator of these modules.
GENERATED_WITH = "1.75.1"
