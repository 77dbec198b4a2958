"""Step kinds. The built-in ones register themselves when WorkflowsConfig.ready imports them."""
