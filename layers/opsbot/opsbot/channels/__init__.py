"""Chat channels: one adapter per kind of robot (config `robots.<name>.kind`), each with its dialect, its signing,
its error codes, its rate limits and its mentions. `adapters.for_robot` picks one; `delivery` drives them."""
