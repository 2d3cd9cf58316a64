"""HTTP: client autoconfiguration now, the webmail later."""
