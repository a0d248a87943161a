from mmsq.cli import main

main()
