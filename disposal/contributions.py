"""What the disposal app adds to the pages of the apps below it (registered in
DisposalConfig.ready)."""
