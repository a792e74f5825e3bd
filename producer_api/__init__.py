"""The producer API: the service's one public HTTP origin."""
