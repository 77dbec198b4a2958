"""Built-in step kinds. Importing this package registers them."""

from workflows.engine.executors import subworkflow, tool  # noqa: F401
