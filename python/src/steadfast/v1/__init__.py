"""The steadfast.v1 wire contract (proto/steadfast/v1), generated with grpcio-tools.

``frame_pb2`` (heartbeats, blob headers, chunks), ``dispatch_pb2`` and
``dispatch_pb2_grpc`` (``steadfast.v1.Dispatch``). Code a user generates from the
emitted wire protos imports ``from steadfast.v1 import frame_pb2`` and finds these.
Do not edit: ``python/tests/test_vendored.py`` checks they are what grpcio-tools
generates from ``proto/`` today.
"""
