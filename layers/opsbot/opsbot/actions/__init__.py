"""Release links: the "发布到 <env>" button of a build notification, its pages (DingTalk's login says who
clicks) and its job in the worker."""
