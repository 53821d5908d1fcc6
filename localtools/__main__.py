from localtools.cli import main

main()
