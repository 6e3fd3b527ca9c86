"""The spec's API routes, one module per resource."""
