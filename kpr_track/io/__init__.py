"""Reading and writing: videos and image folders (:mod:`.video`, :mod:`.frames`), the
result writers (:mod:`.writers`) and the checked text / JSON readers that name the file,
line and field of bad input (:mod:`.textfiles`, :mod:`.jsonfields`)."""
