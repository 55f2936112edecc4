"""The interactive chat: the loop, its slash commands, and streamed Markdown rendering."""
