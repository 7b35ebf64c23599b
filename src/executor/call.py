# A function job's call, as both Python modes make it (src/executor/call.rs): `exec` runs
# this file's text followed by a few lines that read the call from argv, `fork` prepends it
# to the fork server's program (zygote.py).
def _tickd_call(module, attribute, root, args, kwargs, limit, result_fd):
    """Imports `module` (the workspace first on sys.path), checks that its file is in the
    workspace `root`, follows `attribute`, calls it with `args` and `kwargs`, and writes the
    JSON of what it returned to `result_fd`: the value when it is JSON and fits in `limit`
    bytes, else its repr, cut to fit."""
    import importlib, json, os, sys
    target = importlib.import_module(module)
    found = os.path.realpath(getattr(target, "__file__", None) or "")
    if not found.startswith(root + os.sep):
        sys.exit(f"tickd: the module {module} was imported from {found or 'no file'}, not from "
                 f"the workspace {root}; rename the workspace's module")
    for name in attribute.split("."):
        try:
            target = getattr(target, name)
        except AttributeError:
            sys.exit(f"tickd: {module}:{attribute}: {name!r} is not found (AttributeError)")
    value = target(*args, **kwargs)
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        text = None
    if text is None or len(text.encode()) > limit:
        shown = repr(value)
        if len(shown) > limit // 8:
            shown = shown[:limit // 8] + f"... ({len(shown)} characters)"
        text = json.dumps(shown, ensure_ascii=False)
    with os.fdopen(result_fd, "wb") as out:
        out.write(text.encode())
