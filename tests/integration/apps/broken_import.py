"""An app module that cannot be imported: the server must stop with the app-load exit code."""

raise ImportError("broken_import is broken on purpose")
