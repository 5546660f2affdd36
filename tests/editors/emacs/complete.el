;;; complete.el --- drive eglot with the README's snippet, in batch  -*- lexical-binding: t -*-
;; Environment: SNIPPET (the README's init code), FILE (a Python file whose line "    ret" is
;; completed), OUT (where the results go, as JSON).

(package-initialize)                    ; an eglot installed as a package (Emacs 28)
(load (getenv "SNIPPET") nil t)
(require 'json)

(defvar coder-lsp-test--out nil)
(defun coder-lsp-test--note (key value)
  (push (cons key value) coder-lsp-test--out))

(condition-case err
    (progn
      (find-file (getenv "FILE"))
      (coder-lsp-test--note "mode" (symbol-name major-mode))
      ;; `eglot-ensure' connects after the command that opened the file.
      (run-hooks 'post-command-hook)
      (let ((deadline (+ (float-time) 60)))
        (while (and (not (eglot-current-server)) (< (float-time) deadline))
          (accept-process-output nil 0.1)))
      (coder-lsp-test--note "connected" (if (eglot-current-server) t :json-false))
      (goto-char (point-min))
      (search-forward "    ret")
      ;; As a user would: M-x completion-at-point until the engine answers.
      (let ((deadline (+ (float-time) 90)) (tries 0) (done nil))
        (while (and (not done) (< (float-time) deadline))
          (setq tries (1+ tries))
          (ignore-errors (completion-at-point))
          (if (not (string-match-p "^    ret$" (buffer-string)))
              (setq done t)
            (accept-process-output nil 0.2)))
        (coder-lsp-test--note "tries" tries))
      (coder-lsp-test--note "text" (buffer-substring-no-properties (point-min) (point-max))))
  (error (coder-lsp-test--note "error" (format "%S" err))))

(with-temp-file (getenv "OUT")
  (insert (json-encode coder-lsp-test--out)))
(ignore-errors (eglot-shutdown (eglot-current-server)))
(kill-emacs 0)
