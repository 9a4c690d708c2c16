"""The Azure data plane: what the runtime SDK calls in a running service, imported on first use."""
