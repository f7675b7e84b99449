"""Authorization: who is acting (actors) and whether they may (core). Every acting path goes through here."""
