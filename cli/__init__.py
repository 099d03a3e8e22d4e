"""`sensei`: the operators' command-line client of the Sensei gRPC API (`python -m cli`)."""
