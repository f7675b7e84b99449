"""Config: a directory of YAML files (global + one per project), validated with file:line errors, stored in
DynamoDB, and cached in Lambda memory."""
