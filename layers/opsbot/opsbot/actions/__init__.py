"""Release links: the "发布到 <env>" button of a build notification, its confirmation page and its job."""
