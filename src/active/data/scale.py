"""The physical scale of microscope images: the range of µm/px a real set-up can have."""

#: µm/px outside this range is a typo or a unit mistake (nm, mm), not a microscope: 0.05 µm/px
#: is beyond a 100x oil objective on a small-pixel camera, 5 µm/px below a 4x objective.
UM_PER_PX_RANGE = (0.05, 5.0)
