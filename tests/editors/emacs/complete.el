;;; complete.el --- complete "    ret" with eglot, in batch  -*- lexical-binding: t -*-
;; FILE: a Python file with the line "    ret"; see common.el.

(load (expand-file-name "common.el" (file-name-directory load-file-name)) nil t)

(coder-lsp-test-run
 (coder-lsp-test-open (getenv "FILE"))
 (coder-lsp-test-note "mode" (symbol-name major-mode))
 (coder-lsp-test-note "connected" (if (eglot-current-server) t :json-false))
 (goto-char (point-min))
 (search-forward "    ret")
 ;; As a user would: M-x completion-at-point until the engine answers.
 (let ((tries 0))
   (coder-lsp-test-wait
    90 (lambda ()
         (or (not (string-match-p "^    ret$" (buffer-string)))  ; completed: stop asking
             (progn (setq tries (1+ tries))
                    (ignore-errors (completion-at-point))
                    nil))))
   (coder-lsp-test-note "tries" tries))
 (coder-lsp-test-note "text" (buffer-substring-no-properties (point-min) (point-max))))
