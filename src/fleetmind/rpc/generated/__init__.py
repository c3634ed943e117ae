"""protoc output for proto/; regenerate with scripts/gen-protos, never edit by hand."""
