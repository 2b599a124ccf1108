"""Monocular teachers that pseudo-label frames for distillation; one module each, one interface (`base`)."""

from fin3r_lib.training.teachers.base import TEACHERS, Teacher, TeacherOutput, build_teacher

__all__ = ["TEACHERS", "Teacher", "TeacherOutput", "build_teacher"]
