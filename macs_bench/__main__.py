from macs_bench.cli import main

main()
