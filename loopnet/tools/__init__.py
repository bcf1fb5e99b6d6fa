"""Tools that work on the whole library from outside: benchmarks (`bench`), compiling
every kernel ahead (`warmup`), the PTX compile check (`ptx`). They sit on the top floor:
they may import anything in loopnet, and nothing in loopnet imports them but the CLI."""
