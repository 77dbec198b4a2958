"""The built-in step kinds, plugged into the engine through its public door like any app's:
`tool` (workflows.tools) and `workflow` (a sub-workflow as a child run)."""
