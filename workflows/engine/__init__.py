"""The durable engine: planning, advancing and executing runs. It knows nothing of HTTP."""
