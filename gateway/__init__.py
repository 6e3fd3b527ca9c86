"""The HTTP gateway: verifies bearer tokens and turns the spec's REST routes
(and Server-Sent Events) into calls to the four gRPC services."""
