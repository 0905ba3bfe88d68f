from laneway.cli.main import main

main()
