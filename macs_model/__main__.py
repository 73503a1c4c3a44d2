from macs_model.cli import main

main()
