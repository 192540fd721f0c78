"""What the server and the gateways share to be observed: masking, log formats, tracing."""
