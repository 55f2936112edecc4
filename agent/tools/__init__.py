"""Tools the model can call. `base` says what a tool is; `toolset` runs calls; `approval` decides
which calls need the user's yes; `builtin` and `mcp` provide the tools."""
