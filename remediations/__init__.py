"""Built-in remediations (installed as `watchtower.remediations`)."""
