"""The fair streaming baseline: bare mitmdump buffers SSE whole unless told to stream it."""


def responseheaders(flow):  # type: ignore[no-untyped-def]
    if "text/event-stream" in flow.response.headers.get("content-type", ""):
        flow.response.stream = True
