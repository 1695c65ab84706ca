"""The edges: everything that touches the wire, a person or a process."""
