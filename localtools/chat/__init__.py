"""`localtools chat`: the terminal conversation, where its replies come from
(`backends`), and the tools it can offer out of the box (`builtin_tools`)."""
