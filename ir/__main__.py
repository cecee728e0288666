from ir.entrypoints.cli.main import main

main()
