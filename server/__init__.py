"""The dialogue gRPC server and engine."""
